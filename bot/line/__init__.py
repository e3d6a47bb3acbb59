"""Everything that speaks LINE: the API client (the only linebot import), inbound events, and
outbound messages kept within LINE's limits."""
