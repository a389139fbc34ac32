"""Turn a finished demo run into the tables `make run` prints."""

from __future__ import annotations

from typing import Any

from services.core.agreements import Agreement
from services.demo.tables import money, render_table


def alerts_table(alerts: list[dict[str, Any]]) -> str:
    """Every alert raised, with what it is about and its evidence."""
    rows = [
        [
            a["licensee_id"], a["rule"], a["severity"], _about(a),
            _ratio(a.get("observed"), a.get("limit")), a["window_start"][:16],
            (a["evidence"].get("event_ids") or ["-"])[0],
        ]
        for a in alerts
    ]
    headers = ["licensee", "rule", "severity", "about", "observed/limit", "window from", "first evidence"]
    return render_table(f"Alerts raised ({len(alerts)})", headers, rows)


def usage_table(agreements: list[Agreement], reports: dict[str, dict[str, Any]], month: str) -> str:
    """Each licensee's usage in `month` against its monthly caps."""
    rows = []
    for agreement in agreements:
        apps = [r for r in reports[agreement.licensee_id]["apps"] if r["month"] == month]
        calls, records = sum(r["calls"] for r in apps), sum(r["records"] for r in apps)
        limits = agreement.limits
        rows.append([
            agreement.licensee_id, calls, limits.calls_per_month, _percent(calls, limits.calls_per_month),
            records, limits.records_per_month, _percent(records, limits.records_per_month),
            len({r["app_id"] for r in apps}),
        ])
    headers = ["licensee", "calls", "cap", "used", "records", "cap", "used", "apps"]
    return render_table(f"Usage against caps, {month}", headers, rows)


def group_table(agreements: list[Agreement], report: dict[str, Any], month: str) -> str:
    """A licensee group's month: each member against its own caps, the members' sum against the group's."""
    group = report["group"]
    held = next((m for m in group["months"] if m["month"] == month), None)
    own = {a.licensee_id: a.limits for a in agreements}
    rows: list[list[object]] = []
    for member in held["members"] if held else []:
        limits = own[member["licensee_id"]]
        rows.append(_use_row(member["licensee_id"], member, limits.calls_per_month, limits.records_per_month))
    if held:
        caps = {c["metric"]: c["cap"] for c in held["caps"]}
        name = f"{group['group_id']} (group)"
        rows.append(_use_row(name, held, caps.get("calls", 0), caps.get("records", 0)))
    headers = ["account", "calls", "cap", "used", "records", "cap", "used"]
    table = render_table(f"Licensee group {group['group_id']}, {month}: {group['name']}", headers, rows)
    reached = [c for c in held["caps"] if c["reached"]] if held else []
    notes = [f"  The members' sum reached the group's cap: {c['used']:,} of {c['cap']:,} {c['metric']}."
             for c in reached]  # fmt: skip
    return table + "".join(f"{note}\n" for note in notes)


def _use_row(name: str, used: dict[str, Any], calls_cap: int, records_cap: int) -> list[object]:
    calls, records = used["calls"], used["records"]
    return [name, calls, calls_cap or None, _percent(calls, calls_cap), records, records_cap or None,
            _percent(records, records_cap)]  # fmt: skip


def invoices_table(invoices: dict[str, dict[str, Any]]) -> str:
    """Every invoice line and each invoice's total."""
    rows: list[list[object]] = []
    for licensee, invoice in invoices.items():
        currency = invoice["currency"]
        for line in invoice["lines"]:
            rows.append([licensee, line["description"], money(int(line["amount_minor"]), currency)])
        rows.append([licensee, "TOTAL", money(int(invoice["total_minor"]), currency)])
    return render_table("Invoices", ["licensee", "line", "amount"], rows)


def government_table(licensee_id: str, report: dict[str, Any]) -> str:
    """The government-access section of a licensee's usage report, split at each org's notice."""
    rows = [
        [
            g["org_id"], str(g["first_seen"])[:19], str(g["last_seen"])[:19], g["calls"],
            g["calls_before_notice"], g["calls_after_notice"], g["records"],
            str(g["notified_at"])[:19] if g.get("notified_at") else "never", g["notice_first"],
        ]
        for g in report["government"]
    ]  # fmt: skip
    headers = ["government org", "first seen", "last seen", "calls", "before notice", "after notice",
               "records", "notified", "notice first"]  # fmt: skip
    return render_table(f"Government access, {licensee_id}", headers, rows)


def apps_without_use_case_table(licensee_id: str, report: dict[str, Any]) -> str:
    """Apps with no declared use case (registered or not)."""
    rows = [[a["app_id"], a["registered"], a["calls"], a["records"]] for a in report["apps_without_use_case"]]
    return render_table(f"Apps without a declared use case, {licensee_id}", ["app", "registered", "calls",
                                                                              "records"], rows)


def exposure_table(exposures: list[dict[str, Any]], month: str) -> str:
    """Each licensee's month at the cheapest covering published tier, what it was billed, and the gap."""
    rows = []
    for e in exposures:
        tier, billed, currency = e["list_price"], e["billed"], e["currency"]
        rows.append([
            e["licensee_id"], e["usage"]["calls"], e["usage"]["records"], tier["tier"] if tier else "-",
            _amount(e["list_minor"], currency), money(int(billed["amount_minor"]), currency),
            billed["source"], _amount(e["difference_minor"], currency), e["status"],
        ])  # fmt: skip
    headers = ["licensee", "calls", "records", "cheapest tier", "list price", "billed", "from", "difference",
               "status"]  # fmt: skip
    gaps = [f"  {e['summary']}" for e in exposures if e["status"] == "unbilled exposure"]
    table = render_table(f"Unbilled exposure, {month} (published tiers)", headers, rows)
    return table + "\n".join(gaps) + "\n"


def _amount(minor: int | None, currency: str) -> str:
    return "-" if minor is None else money(int(minor), currency)


def _about(alert: dict[str, Any]) -> str:
    # A group's volume alert has the group as subject and the capped metric apart.
    subject, metric = alert.get("subject") or "-", alert.get("metric")
    return f"{subject} {metric}" if metric and metric != subject else subject


def _ratio(observed: object, limit: object) -> str:
    if observed is None or limit is None:
        return "-"
    return f"{observed}/{limit}"


def _percent(value: int, cap: int) -> str:
    return f"{100 * value // cap}%" if cap else "-"
