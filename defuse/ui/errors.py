"""Errors in plain words: what happened and what to do; a traceback only inside a closed expander."""

from __future__ import annotations

import traceback
from contextlib import contextmanager

import streamlit as st

from ..jobs import JobBusy


def show_unexpected(what: str, error: BaseException) -> None:
    """An error we did not foresee: a short message, the details hidden in an expander."""
    st.error(f"Something went wrong while trying to {what} ({type(error).__name__}: {str(error)[:200]}). "
             "Try again; if it keeps happening, the details below help to report it.")
    with st.expander("Technical details"):
        st.code("".join(traceback.format_exception(error))[-6000:], language="text")


@contextmanager
def guard(what: str, *, stop: bool = True):
    """Run a block; a ValueError (a bad input or a step not run yet) becomes an error box with its message.

    ``stop``: end the page after an error (the rest of it depends on the block).
    Streamlit's own control flow (st.stop, st.rerun) derives from BaseException and passes through.
    """
    try:
        yield
    except JobBusy as e:
        st.warning(f"One job runs per project at a time: {e}. Its progress is shown on its page and in the "
                   "sidebar.")
    except (ValueError, FileNotFoundError) as e:
        st.error(f"Could not {what}: {e}")
    except Exception as e:  # anything else: never a raw traceback on the page
        show_unexpected(what, e)
    else:
        return
    if stop:
        st.stop()
