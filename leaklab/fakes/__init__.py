"""Offline stand-ins a backend talks to: an OpenAI-compatible LLM/TTS server.

The reference backend starts one when no LLM URL is given; the olv profile
points an attached app's LLM and TTS at one.
"""
