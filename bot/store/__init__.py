"""What the bot keeps: thread memory, claims, answers in flight, notes, and every Redis key."""
