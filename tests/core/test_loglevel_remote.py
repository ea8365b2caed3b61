"""The change_loglevel built-in, in process: only loggers the process has may be changed
remotely, so a caller cannot grow it by sending new names."""
from __future__ import annotations

import logging

import pytest

from fannode.core.loglevel import change_level, check_period
from fannode.exceptions import BadArguments


@pytest.fixture
def known():
    """A logger of this process's, its level put back afterwards."""
    logger = logging.getLogger('tests.loglevel.known')
    saved = logger.level
    yield logger
    logger.setLevel(saved)


def test_new_names_are_refused_and_the_process_keeps_no_trace_of_them():
    loggers = logging.root.manager.loggerDict
    before = len(loggers)
    for i in range(20000):
        with pytest.raises(BadArguments) as info:
            change_level('DEBUG', 'spam.%d' % i)
    assert str(info.value) == ("no logger named 'spam.19999' in this process (loggers exist once code "
                               "logs through them, e.g. 'fannode' or the services' modules)")
    assert len(loggers) == before and 'spam.0' not in loggers


def test_a_logger_the_process_has_is_changed(known):
    reply = change_level('debug', 'tests.loglevel.known')
    assert reply == {'logger': 'tests.loglevel.known', 'old': 'NOTSET', 'new': 'DEBUG', 'period': None}
    assert known.level == logging.DEBUG
    # a parent that exists only as a placeholder ('tests.loglevel') is a name the process has
    parent = logging.getLogger('tests.loglevel')
    try:
        assert change_level('ERROR', 'tests.loglevel')['new'] == 'ERROR'
    finally:
        parent.setLevel(logging.NOTSET)


def test_a_name_too_long_is_refused_before_any_look_up():
    with pytest.raises(BadArguments) as info:
        change_level('DEBUG', 'x' * 201)
    assert str(info.value) == 'logger name too long: 201 characters (at most 200)'
    with pytest.raises(BadArguments):
        change_level('DEBUG', 42)


@pytest.mark.parametrize('period', [float('inf'), float('nan'), 1e300, 8 * 24 * 3600, -1, True, '5'])
def test_a_period_must_be_positive_and_at_most_a_week(period):
    with pytest.raises(BadArguments) as info:
        check_period(period)
    assert str(info.value).startswith('period must be a positive number of seconds up to 604800 (a week)')
