"""Offline stand-ins a backend talks to: an OpenAI-compatible LLM/TTS server.

The reference backend starts one when no LLM URL is given; the olv profile
points an attached app's LLM and TTS at one.

    openai          FakeOpenAIServer: the app on uvicorn in a thread of its
                    own; ``python -m leaklab.fakes.openai`` serves it
    openai_app      the ASGI app (chat completions, speech, models) and its
                    counters
    openai_replies  what it answers: request checks, reply text, tool-call
                    arguments, SSE framing, the WAV tone
    asr             a fake speech recogniser
"""
