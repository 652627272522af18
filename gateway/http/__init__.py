"""HTTP: the aiohttp application, token auth, request guards, JSON errors, OpenAPI, and the core routes."""

from .api import Api, HttpError, json_response, public
from .body import json_object

__all__ = ["Api", "HttpError", "json_object", "json_response", "public"]
