"""Errors in OpenAI's shape, {"error": {"message", "type", "param", "code"}}, for every route of the API."""

from __future__ import annotations

from fastapi.responses import JSONResponse


class ApiError(Exception):
    """A request this server refuses: the HTTP status and OpenAI's error fields."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param


def error_response(status: int, message: str, type_: str = "invalid_request_error", code: str | None = None,
                   param: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type_, "param": param, "code": code}}, status_code=status)
