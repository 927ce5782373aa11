"""Pydantic models of the Work and its parts: the one source of truth for the schema."""

from workflow.definitions.config import Archive, Config
from workflow.definitions.notify import Notify, Slack
from workflow.definitions.work import Work, WorkDocument, WorkFields

__all__ = ["Archive", "Config", "Notify", "Slack", "Work", "WorkDocument", "WorkFields"]
