"""Files people share with a question: images for the model to see, documents for it to read.

    FileRef (what the adapter saw: name, type, size, where to fetch it)
      │  screen: type, size and count checked from the metadata, before any download
      ▼
    FileFetcher (the adapter's: Slack's bearer token, Discord's CDN), capped while streaming
      │
      ├─ images ──► downscaled (Pillow) ──► image inputs of the model's last message
      └─ documents ──► text with page or line locations (pypdf, python-docx, charset-normalizer)
                        └─► quoted into the prompt as far as the budget allows, kept with the turn

Anything that cannot be read becomes one sentence for the user; the rest is still answered.
"""
