"""Everything that speaks LINE: the API client (the only linebot import, to deploy rich
menus), its HTTP without the SDK, inbound events, and outbound messages kept within LINE's
limits."""
