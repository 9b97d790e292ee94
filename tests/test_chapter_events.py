"""A chapter's event log and its ids, without a server: whatever id a reader resumes after,
it gets exactly the events that follow it (or all of them, when the id is none of this
attempt's), pieces merged or not, and the last event is always `close`."""
from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from service.chapters.events import EventLog
from service.domain.chapter_events import ATTEMPT_SPAN, EndEvent, EventIds, Failed, Finished, TextPiece

ENDS = st.sampled_from([Finished(("A paragraph.",), ("Go", "Stay", "Wait")), Failed("It broke.")])
ATTEMPTS = st.integers(1, 5).map(lambda n: EventIds(n * ATTEMPT_SPAN))


def _read(log: EventLog, after: int | None) -> list[TextPiece | EndEvent]:
    async def read():
        return [item async for item in log.follow(after)]

    return asyncio.run(read())


def _log(ids: EventIds, pieces: list[str], end) -> EventLog:
    log = EventLog(ids)
    for text in pieces:
        log.text(text)
    log.close(end)
    return log


def _any_id(ids: EventIds, pieces: int, end) -> st.SearchStrategy[int | None]:
    """Ids of this attempt's events, of its neighbours' and of none at all."""
    ours = [ids.base, *(ids.piece(n) for n in range(1, pieces + 2)), *(e.id for e in ids.end_events(end))]
    return st.one_of(st.none(), st.sampled_from(ours), st.integers(-5, 6 * ATTEMPT_SPAN))


@given(ids=ATTEMPTS, pieces=st.lists(st.text(min_size=1, max_size=5), max_size=20), end=ENDS, data=st.data())
def test_when_a_reader_resumes_after_any_id_then_it_gets_what_follows_it_or_everything(ids, pieces, end, data):
    log = _log(ids, pieces, end)
    given_out = [ids.piece(n) for n in range(1, len(pieces) + 1)] + [e.id for e in ids.end_events(end)[:-1]]
    after = data.draw(_any_id(ids, len(pieces), end))

    resumed = _read(log, after)

    assert [e.name for e in resumed if isinstance(e, EndEvent)][-1] == "close"
    text = "".join(item.text for item in resumed if isinstance(item, TextPiece))
    if after in given_out:
        assert all(item.id > after for item in resumed)
        assert text == "".join(pieces[max(after - ids.base, 0):])
    else:
        assert text == "".join(pieces)
        assert [e.name for e in resumed if isinstance(e, EndEvent)] == list(end.events)


@given(ids=ATTEMPTS, end=ENDS, data=st.data())
def test_when_a_stored_chapter_is_followed_then_its_end_follows_every_id_its_attempt_gave(ids, end, data):
    after = data.draw(_any_id(ids, 30, end))
    resumed = _read(EventLog.stored(ids, end), after)

    names = [e.name for e in resumed]
    assert names[-1] == "close" and names == list(end.events)[-len(names):]
    assert all(ids.base < e.id <= ids.last for e in resumed)
    assert ids.last < ids.next_attempt().piece(1), "a retry's first id does not follow this attempt's last"
