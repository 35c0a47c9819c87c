"""Errors in plain words: what happened and what to do; a traceback only inside a closed expander."""

from __future__ import annotations

import re
import traceback
from contextlib import contextmanager

import streamlit as st

from ..cli.jobs import JobBusy
from ..data.config import DatasetSpec
from ..distill.config import DistillConfig, ScenarioDraw
from ..identify.config import IdentifyConfig
from ..nets.trust import UntrustedCodeError, trust
from ..runtime.atomic import sha256_file
from ..runtime.settings import SettingError, declared, flag_of

# A bad setting is named by its declared label (SettingError.words("app"), defuse.runtime.settings). A setting named
# inside a longer message (the fix a memory check or a step suggests: "lower --samples") is named by the same
# declaration: its flag -> its label, for the settings the app's pages set.
PAGE_SETTINGS = (IdentifyConfig, DistillConfig, ScenarioDraw, DatasetSpec)
# Only these are written here: they are CLI options, not settings of any config, so no declaration carries the
# words of the page's control that does the same.
NOT_SETTINGS = {"--architecture": "“Network of bare weights”", "--trust-code": "the “I trust this file” box",
                "--accept-low-fidelity": "the “Search with this VAE anyway” box"}
APP_WORDS = {**{"--" + flag_of(name, spec): spec.label for cls in PAGE_SETTINGS for name, spec in declared(cls).items()
                if spec.label}, **NOT_SETTINGS}


def app_words(message: str) -> str:
    """``message`` with the CLI options it names replaced by the app's fields (unknown options stay)."""
    message = message.replace("(--size for image size)", "(a new project in the sidebar, with its “Image size”)")
    return re.sub(r"(?<![\w-])--[a-z][a-z-]*", lambda m: APP_WORDS.get(m.group(0), m.group(0)), message)


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
        st.error(f"Could not {what}: {app_words(str(e))}")
    except Exception as e:  # anything else: never a raw traceback on the page
        show_unexpected(what, e)
    else:
        return
    if stop:
        st.stop()
