"""Acks before answers: the work of a burst's deliveries starts once the burst has been acked."""

from __future__ import annotations

import asyncio

from adapters.intake import Intake


async def turn() -> None:
    await asyncio.sleep(0)  # one turn of the event loop, the unit the intake counts in


async def test_a_lone_delivery_starts_on_the_next_turn() -> None:
    intake = Intake()
    after = intake.arrived()
    assert not after.done()
    await turn()
    await turn()
    assert after.done()


async def test_a_burst_starts_only_after_a_turn_with_no_new_delivery() -> None:
    intake, waiting = Intake(), []

    async def deliver() -> None:  # as the socket client runs each envelope's listener
        waiting.append(intake.arrived())

    for _ in range(5):  # a reader starting three deliveries on each of five turns in a row
        for _ in range(3):
            asyncio.get_running_loop().create_task(deliver())
        await turn()
        assert not any(w.done() for w in waiting)
    await turn()
    await turn()
    await turn()
    assert len(waiting) == 15 and all(w.done() for w in waiting)


async def test_a_burst_that_never_pauses_waits_no_longer_than_most() -> None:
    now = [0.0]
    intake = Intake(most=0.05, clock=lambda: now[0])
    first = intake.arrived()
    for _ in range(3):
        intake.arrived()
        await turn()
    assert not first.done()
    now[0] = 0.06
    intake.arrived()
    await turn()
    await turn()
    assert first.done()
    later = intake.arrived()  # the next burst waits again
    assert not later.done()


async def test_a_delivery_cancelled_while_it_waits_leaves_the_rest_of_its_burst_waiting() -> None:
    intake = Intake()
    mine, theirs = intake.arrived(), intake.arrived()

    async def work(after: asyncio.Future[None]) -> None:
        await after  # as SlackBot.accept_soon waits

    first = asyncio.get_running_loop().create_task(work(mine))
    second = asyncio.get_running_loop().create_task(work(theirs))
    await turn()
    first.cancel()
    await turn()
    await turn()
    await second
    assert first.cancelled() and theirs.done() and not theirs.cancelled()
