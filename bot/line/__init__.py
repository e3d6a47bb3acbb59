"""Everything that speaks LINE: the API client (the only linebot import,
for rich menus), its HTTP without the SDK, inbound events, and
outbound messages kept within LINE's limits."""
