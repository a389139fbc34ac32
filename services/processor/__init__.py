"""The stream processor: rolling per-licensee counts, agreement rules, alerts and billable usage."""
