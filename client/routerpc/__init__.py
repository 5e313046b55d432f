"""routerpc: typed gRPC contracts and a Python client for the routerpc OpenRouter gateway.

from routerpc import ChatRequestBuilder, ProviderConfig, Quantization, RouterClient

request = ChatRequestBuilder().with_model("openai/gpt-4o").with_text("Hello!").build()
request.provider = ProviderConfig(quantizations=[Quantization.FP8, Quantization.FP16])
with RouterClient("localhost:50051") as client:
    print(client.chat(request).text)
"""

from __future__ import annotations

from routerpc import pb
from routerpc._async_client import AsyncRouterClient
from routerpc._builder import ChatRequestBuilder
from routerpc._client import RouterClient
from routerpc._errors import (
    AbortedError,
    AlreadyExistsError,
    CancelledError,
    DataLossError,
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    OutOfRangeError,
    PermissionDeniedError,
    ResourceExhaustedError,
    RouterError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
    UnknownError,
    error_from_rpc,
    error_from_status,
)
from routerpc._gen.enums import (
    DataCollection,
    FinishReason,
    ImageDetail,
    Modality,
    Quantization,
    ReasoningEffort,
    ReasoningSummary,
    ResponseFormatType,
    Role,
    ServiceTier,
    SortPartition,
    SortStrategy,
    ToolChoiceMode,
)
from routerpc._request import ChatRequest
from routerpc._response import ChatChunk, ChatResult
from routerpc.pb import MaxPrice, PerformancePreference, ProviderConfig, SortConfig

__version__ = "0.1.0"

__all__ = [
    "AbortedError",
    "AlreadyExistsError",
    "AsyncRouterClient",
    "CancelledError",
    "ChatChunk",
    "ChatRequest",
    "ChatRequestBuilder",
    "ChatResult",
    "DataCollection",
    "DataLossError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "FieldViolation",
    "FinishReason",
    "ImageDetail",
    "InternalError",
    "InvalidArgumentError",
    "MaxPrice",
    "Modality",
    "NotFoundError",
    "OutOfRangeError",
    "PerformancePreference",
    "PermissionDeniedError",
    "ProviderConfig",
    "Quantization",
    "ReasoningEffort",
    "ReasoningSummary",
    "ResourceExhaustedError",
    "ResponseFormatType",
    "Role",
    "RouterClient",
    "RouterError",
    "ServiceTier",
    "SortConfig",
    "SortPartition",
    "SortStrategy",
    "ToolChoiceMode",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "UnknownError",
    "error_from_rpc",
    "error_from_status",
    "pb",
]
