"""Usage, cost and quotas: who spent how many tokens on which model, what it cost, and limits.

tally.py    who pays for the current request, and the model calls it made (a contextvar)
prices.py   BOT_PRICES: a model's price per million input and output tokens
ledger.py   daily totals per workspace, channel, user and model; reservations; the port
redis_ledger.py  the same in Redis, atomic across processes
quotas.py   the engine's side: check and reserve before the model, record with the save
report.py   what /usage shows
"""
