"""Safeguards from the Denver ALPR contract terms and transparency portal.

- `policy`        the policy file: retention, permitted offences, prohibited purposes,
                  owning agency, MOU agencies, federal markers.
- `retention`     the 30-day read store (Redis, TTL on each read and on every index).
- `alerts`        alerts (retained like the reads they carry) and their verifications.
- `ingest`        alpr.reads / alpr.alerts consumer that fills the stores.
- `access`        agencies (owner + MOU) and users with hashed tokens.
- `audit`         append-only, hash-chained audit trail kept indefinitely.
- `gate`          authentication + authorisation of one request, audited on refusal.
- `search`        the guarded search (HTTP and CLI share it).
- `verification`  recording who verified or dismissed an alert.
- `transparency`  the public statistics of the portal, from live data.
- `historical`    historical hits when a hotlist entry is added.
- `api`, `cli`    the HTTP API and the `alpr` subcommands.

Every Redis key of this package starts with `alpr:sg:`.
"""

KEY_PREFIX = "alpr:sg:"
