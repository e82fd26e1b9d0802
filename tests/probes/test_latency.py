"""Time spent inside a method, and the latencies a cycle measured: the
latency probe's columns."""

from __future__ import annotations

import asyncio
import types

from leaklab.driver.client import TurnTiming
from leaklab.driver.scenarios import CycleState
from leaklab.probes import LatencyProbe, ProbeContext, TimedMethod


class Timed:
    async def aclose(self, delay: float = 0.0) -> str:
        await asyncio.sleep(delay)
        return "aclosed"


def test_timed_method_accumulates_time_inside_async_method() -> None:
    # GIVEN a timer on an async method
    original = Timed.__dict__["aclose"]
    with TimedMethod(Timed, "aclose") as timer:
        # WHEN it sleeps 0.06 s
        asyncio.run(Timed().aclose(0.06))
        # THEN at least ~0.05 s is taken, once
        first = timer.take()
        assert 0.05 <= first < 5
        assert timer.take() == 0.0
        assert timer.calls == 1 and timer.total == first
    assert Timed.__dict__["aclose"] is original


def test_latency_probe_reports_the_cycle_latencies_and_the_llm_share() -> None:
    # GIVEN a target whose "llm" call is timed, and a cycle with two connects and one turn
    target = types.SimpleNamespace(timed={"llm": "x"}, resolve_methods=lambda m: {"llm": (Timed, "aclose")} if m else {})
    context = ProbeContext(target)
    probe = LatencyProbe()
    original = Timed.__dict__["aclose"]
    probe.install(context)
    try:
        probe.begin(context)
        asyncio.run(Timed().aclose(0.02))
        state = CycleState("127.0.0.1", 0, "/client-ws", None, (), 1, 1.0)
        state.connect_s = [0.1, 0.3]
        state.turns = [TurnTiming(first_audio_s=0.5, chain_end_s=1.0, frames=[])]
        context.state = state
        # WHEN the census samples it
        out = probe.sample(context)
    finally:
        probe.uninstall()
    # THEN each latency in ms, the LLM's share timed apart, the rest the backend's
    assert abs(out["latency_connect_ms"] - 200.0) < 1e-9
    assert (out["latency_first_ms"], out["latency_end_ms"]) == (500.0, 1000.0)
    assert 15 <= out["llm_ms"] < 1000 and abs(out["backend_ms"] - (1000.0 - out["llm_ms"])) < 1e-9
    # AND the method is back, and the probe is not sampled in the timeline
    assert Timed.__dict__["aclose"] is original and probe.timeline is False


def test_without_a_timed_llm_call_the_fake_llms_own_time_is_the_llm_share() -> None:
    # GIVEN a target that times no LLM method, whose LLM is leaklab's fake
    # server (answering after 0.15 s), called through the real openai SDK
    import openai

    from leaklab.fakes.openai import FakeOpenAIServer

    target = types.SimpleNamespace(timed={}, resolve_methods=lambda m: {})
    context = ProbeContext(target)
    probe = LatencyProbe()
    probe.install(context)
    with FakeOpenAIServer(base_latency_s=0.15) as base_url:
        client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0, timeout=10)
        try:
            probe.begin(context)
            for _ in range(2):  # one turn that calls its LLM twice (a tool call, say)
                stream = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                                        stream=True)
                assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            state = CycleState("127.0.0.1", 0, "/client-ws", None, (), 1, 1.0)
            state.turns = [TurnTiming(first_audio_s=0.5, chain_end_s=1.0, frames=[])]
            context.state = state
            # WHEN the census samples the cycle
            out = probe.sample(context)
            # THEN the LLM's share is the server's answering time, both calls
            assert 300 <= out["llm_ms"] < 1000, out
            assert abs(out["backend_ms"] - (1000.0 - out["llm_ms"])) < 1e-9
            # AND a cycle in which the fake answered nothing has no LLM share
            out = probe.sample(context)
            assert "llm_ms" not in out and "backend_ms" not in out
        finally:
            client.close()
            probe.uninstall()
