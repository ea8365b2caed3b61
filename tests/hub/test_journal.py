"""The hub's journal on disk: what it keeps across a restart, and what it does not keep."""
from __future__ import annotations

from fannode.hub import journal
from fannode.hub.broker import Entry
from fannode.hub.journal import SqliteJournal


def test_only_the_newest_dead_letters_are_kept_on_disk(tmp_path, monkeypatch):
    """A poison stream cannot fill the disk: past FANNODE_HUB_DEAD_KEPT the oldest go."""
    monkeypatch.setattr(journal, 'DEAD_KEPT', 150)
    path = str(tmp_path / 'hub.sqlite3')
    j = SqliteJournal(path)
    for i in range(1, 451):
        j.dead('q', Entry(i, {'type': 'e', 'n': i}), 'bad %d' % i)
        j.commit()
    j.close()
    again = SqliteJournal(path)  # what a restarted hub finds
    letters = again.dead_letters(1000)
    again.close()
    assert [d['event']['n'] for d in letters[:3]] == [450, 449, 448]
    assert 150 <= len(letters) < 150 + journal.TRIM_EVERY  # trimmed every hundred letters
    assert letters[-1]['event']['n'] == 451 - len(letters) and letters[0]['reason'] == 'bad 450'
