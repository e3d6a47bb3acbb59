"""Core package of the grassroots-economy LINE bot."""
