"""The demo's licensee group `halcyon` as its October report and the terminal show it, every figure exact:
the expectation the unit, integration and e2e tiers share."""

HALCYON_OCTOBER = {
    "group_id": "halcyon", "month": "2026-10", "calls": 600, "records": 6_000,
    "members": [{"licensee_id": "halcyon-news", "calls": 300, "records": 3_000},
                {"licensee_id": "halcyon-tv", "calls": 300, "records": 3_000}],
    "members_without_use": [],
    "caps": [{"metric": "calls", "cap": 500, "used": 600, "share": 1.2, "reached": True}],
}  # fmt: skip
HALCYON = {
    "group_id": "halcyon", "name": "Halcyon Media (every Halcyon account)",
    "members": ["halcyon-news", "halcyon-tv"],
    "months": [HALCYON_OCTOBER],
}
HALCYON_TABLE = """\
== Licensee group halcyon, 2026-10: Halcyon Media (every Halcyon account) ==
account          calls  cap  used  records  cap     used
---------------  -----  ---  ----  -------  ------  ----
halcyon-news       300  400  75%     3,000  10,000  30%
halcyon-tv         300  400  75%     3,000  10,000  30%
halcyon (group)    600  500  120%    6,000  -       -
  The members' sum reached the group's cap: 600 of 500 calls.
"""
