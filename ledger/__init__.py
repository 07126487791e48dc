"""Write side of the payment ledger: aggregates, commands and money. No web or SQL here."""
