"""The demo scenario: three licensees, one month of traffic, a story to tell."""
