"""Provider clients: one module per push service, knowing nothing of SNS.

Each client takes provider-native notifications (built by :mod:`pushgate.domain.payloads`)
and reduces every answer to one :class:`~pushgate.providers.outcomes.Outcome`
(specs/providers.md sec. 0.1).
"""
