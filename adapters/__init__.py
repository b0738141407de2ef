"""Platform adapters: they turn platform events into core calls and render answers back."""
