"""What a person reads: the failure message, the terminal table, summary.json, Allure."""
