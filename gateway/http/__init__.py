"""HTTP: the aiohttp application, token auth, JSON errors, OpenAPI, and the core routes."""

from .api import Api, HttpError, json_object, json_response, public

__all__ = ["Api", "HttpError", "json_object", "json_response", "public"]
