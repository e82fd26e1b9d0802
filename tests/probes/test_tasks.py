"""Pending tasks by coroutine, and where each task was created."""

from __future__ import annotations

import asyncio
import inspect

from leaklab import metrics
from leaklab.metrics import Kind
from leaklab.probes import ProbeContext, TaskCreationRecorder, TasksProbe, task_census


async def sleeper_f() -> None:
    await asyncio.sleep(30)


async def sleeper_g() -> None:
    await asyncio.sleep(30)


def test_task_census_groups_by_qualname_and_excludes_caller() -> None:
    async def main() -> None:
        # GIVEN three tasks of f and one of g
        tasks = [asyncio.create_task(sleeper_f()) for _ in range(3)] + [asyncio.create_task(sleeper_g())]
        await asyncio.sleep(0)
        try:
            # WHEN the census runs from another task
            census = task_census()
            # THEN they are grouped by qualname and the caller is not counted
            assert census.total == 4
            assert census.by_coroutine == {"sleeper_f": 3, "sleeper_g": 1}
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert task_census().total == 0

    asyncio.run(main())


class _TaskGroup310:
    """``asyncio.TaskGroup`` (3.11+) for 3.10: ``create_task`` is
    ``asyncio.ensure_future`` itself, asyncio code as ``TaskGroup.create_task``
    is, and the exit awaits the tasks created inside."""

    create_task = staticmethod(asyncio.ensure_future)

    async def __aenter__(self) -> _TaskGroup310:
        self._before = asyncio.all_tasks()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.gather(*(asyncio.all_tasks() - self._before))


_TaskGroup = getattr(asyncio, "TaskGroup", _TaskGroup310)


def test_task_creation_recorder_records_call_site_and_restores_factory() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        # GIVEN a recorder on a loop without a task factory
        assert loop.get_task_factory() is None
        recorder = TaskCreationRecorder().install()
        try:
            # WHEN a task is created here, and one through a TaskGroup
            task = asyncio.create_task(sleeper_f()); line = inspect.currentframe().f_lineno  # noqa: E702
            async with _TaskGroup() as group:
                grouped = group.create_task(asyncio.sleep(0)); group_line = inspect.currentframe().f_lineno  # noqa: E702
            # THEN the site is this file and line (asyncio frames skipped)
            site = recorder.site(task)
            assert site is not None
            assert (site.filename, site.lineno) == (__file__, line)
            assert site.function.endswith("main")
            assert recorder.site(grouped).lineno == group_line
            assert recorder.live_sites() == {str(site): 1}
            census = task_census(recorder=recorder)
            assert census.by_site == {str(site): 1}
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        finally:
            recorder.uninstall()
        # THEN the previous factory (none) is back
        assert loop.get_task_factory() is None

    asyncio.run(main())


def test_task_creation_recorder_chains_existing_factory() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        made: list[asyncio.Task[object]] = []

        def factory(loop: asyncio.AbstractEventLoop, coro: object, **kwargs: object) -> asyncio.Task[object]:
            task = asyncio.Task(coro, loop=loop, **kwargs)  # type: ignore[arg-type]
            made.append(task)
            return task

        # GIVEN a loop with its own task factory
        loop.set_task_factory(factory)
        try:
            # WHEN the recorder is installed and a task created
            with TaskCreationRecorder() as recorder:
                task = asyncio.create_task(asyncio.sleep(0), name="named")
                await task
                # THEN the old factory still made the task, and the site is recorded
                assert made == [task] and task.get_name() == "named"
                assert recorder.site(task) is not None
            # THEN the old factory is back
            assert loop.get_task_factory() is factory
        finally:
            loop.set_task_factory(None)

    asyncio.run(main())


def test_tasks_probe_owns_the_task_columns_and_publishes_the_creation_sites() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        # GIVEN the probe installed on the running loop
        context = ProbeContext(target=None)  # type: ignore[arg-type]
        probe = TasksProbe()
        probe.install(context)
        try:
            tasks = [asyncio.create_task(sleeper_f()) for _ in range(2)]
            await asyncio.sleep(0)
            # WHEN sampled
            out = probe.sample(context)
            # THEN the pending tasks in all and by coroutine; the sites recorded
            assert out == {"tasks": 2, metrics.name(Kind.TASK, "sleeper_f"): 2}
            assert context.task_sites is probe.recorder and context.task_sites.site(tasks[0]) is not None
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            probe.uninstall()
        # AND the loop's factory is back
        assert loop.get_task_factory() is None

    asyncio.run(main())
