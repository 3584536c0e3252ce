"""Values SNS returns, written out from specs/sns-api.md independently of the code."""

from __future__ import annotations

# sec. 4.14: the default retry policy for HTTP/S deliveries, in topics and subscriptions.
HEALTHY_RETRY_POLICY = {
    "minDelayTarget": 20,
    "maxDelayTarget": 20,
    "numRetries": 3,
    "numMaxDelayRetries": 0,
    "numNoDelayRetries": 0,
    "numMinDelayRetries": 0,
    "backoffFunction": "linear",
}
