"""speechcrawl."""
