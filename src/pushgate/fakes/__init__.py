"""Strict fake push providers, on the wire (HTTP/2 + TLS) as the real ones are.

:mod:`~pushgate.fakes.apns` and :mod:`~pushgate.fakes.fcm` check requests as strictly as
specs/providers.md sec. 10 asks, answer with the real error bodies, record what they
received and take scripted failures; :mod:`~pushgate.fakes.runner` runs them in a thread
for tests, and ``pushgate fake-providers`` (:mod:`~pushgate.fakes.command`) for people.
:mod:`~pushgate.fakes.h2server` is their shared HTTP/2 server core, and
:class:`~pushgate.fakes.base.FakeServer` the serving, records and scripts they share.
"""
