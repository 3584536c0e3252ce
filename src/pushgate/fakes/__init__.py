"""Strict fake push providers, on the wire (TLS; HTTP/2, or HTTP/1.1 where the provider
speaks it) as the real ones are.

One module per provider (:mod:`~pushgate.fakes.apns`, :mod:`~pushgate.fakes.fcm`,
:mod:`~pushgate.fakes.adm`, :mod:`~pushgate.fakes.hms`, :mod:`~pushgate.fakes.wns`,
:mod:`~pushgate.fakes.mpns`, :mod:`~pushgate.fakes.baidu`, :mod:`~pushgate.fakes.webpush`)
checks requests as strictly as specs/providers.md sec. 10 asks, answers with the real error
bodies, records what it received and takes scripted failures.
:class:`~pushgate.fakes.base.FakeServer` is the serving, records and scripts they share,
:mod:`~pushgate.fakes.client_credentials` their OAuth token endpoints, and
:mod:`~pushgate.fakes.h2server` (with :mod:`~pushgate.fakes.h1server`) their server core.
:mod:`~pushgate.fakes.runner` runs them all in a thread for tests, and
``pushgate fake-providers`` (:mod:`~pushgate.fakes.command`) for people.
"""
