"""Errors in plain words: what happened and what to do; a traceback only inside a closed expander."""

from __future__ import annotations

import traceback
from contextlib import contextmanager

import streamlit as st

from ..cli.jobs import JobBusy
from ..nets.trust import UntrustedCodeError, trust
from ..runtime.atomic import sha256_file
from ..runtime.settings import SettingError

# A message names a setting or option in the app's words when it is made (defuse.runtime.words: the app speaks to
# pages, defuse.ui.boot), so it is shown as it is: nothing here rewrites it.


def trust_box(e: UntrustedCodeError) -> None:
    """The user's explicit trust for one file, named with its checksum; verified again before it is recorded."""
    ok = st.checkbox(f"I trust {e.path.name} (sha256 {e.sha256}) and let Defuse load it", key=f"trust-{e.sha256}")
    if st.button("Trust this file", key=f"trust-go-{e.sha256}", disabled=not ok):
        if sha256_file(e.path) != e.sha256:
            st.error(f"{e.path.name} changed since you were asked: reload the page")
            return
        trust(e.path, e.fmt, e.sha256)
        st.rerun()


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
    except UntrustedCodeError as e:  # a project's own model file this user has not trusted (say, a copied project)
        st.error(f"Could not {what}: {e}")
        trust_box(e)
    except JobBusy as e:
        st.warning(f"One job runs per project at a time: {e}. Its progress is shown on its page and in the "
                   "sidebar.")
    except SettingError as e:  # a setting's declared label names it (defuse.runtime.settings)
        st.error(f"Could not {what}: {e.words('app')}")
    except (ValueError, FileNotFoundError) as e:
        st.error(f"Could not {what}: {e}")
    except Exception as e:  # anything else: never a raw traceback on the page
        show_unexpected(what, e)
    else:
        return
    if stop:
        st.stop()
