"""Search over what the team wrote: the index behind grounded answers and `python -m bot search`."""
