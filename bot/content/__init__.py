"""What the bot says: reply texts, menus and Flex cards built from the knowledge snapshot."""
