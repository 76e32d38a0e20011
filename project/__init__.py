"""PasteTrader's backend foundation: settings, database, models and management commands."""
