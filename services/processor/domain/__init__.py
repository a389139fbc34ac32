"""Pure domain of the processor: windows, per-licensee state, dedupe and rules (no I/O, clock passed in)."""
