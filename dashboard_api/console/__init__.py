"""The browser console: its page and assets (static/) and the sign-in sessions behind it."""
