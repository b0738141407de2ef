"""The Discord adapter: mentions open threads, replies continue chains, /summarize and /forget."""
