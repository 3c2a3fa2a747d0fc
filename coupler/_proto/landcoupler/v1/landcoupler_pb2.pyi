import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DTYPE_UNSPECIFIED: _ClassVar[DType]
    DTYPE_FLOAT32: _ClassVar[DType]
    DTYPE_FLOAT64: _ClassVar[DType]
    DTYPE_FLOAT16: _ClassVar[DType]
    DTYPE_INT8: _ClassVar[DType]
    DTYPE_INT16: _ClassVar[DType]
    DTYPE_INT32: _ClassVar[DType]
    DTYPE_INT64: _ClassVar[DType]
    DTYPE_UINT8: _ClassVar[DType]
    DTYPE_UINT16: _ClassVar[DType]
    DTYPE_UINT32: _ClassVar[DType]
    DTYPE_UINT64: _ClassVar[DType]
DTYPE_UNSPECIFIED: DType
DTYPE_FLOAT32: DType
DTYPE_FLOAT64: DType
DTYPE_FLOAT16: DType
DTYPE_INT8: DType
DTYPE_INT16: DType
DTYPE_INT32: DType
DTYPE_INT64: DType
DTYPE_UINT8: DType
DTYPE_UINT16: DType
DTYPE_UINT32: DType
DTYPE_UINT64: DType

class Codec(_message.Message):
    __slots__ = ("id", "config_json", "keepbits")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    KEEPBITS_FIELD_NUMBER: _ClassVar[int]
    id: str
    config_json: str
    keepbits: int
    def __init__(self, id: _Optional[str] = ..., config_json: _Optional[str] = ..., keepbits: _Optional[int] = ...) -> None: ...

class Field(_message.Message):
    __slots__ = ("name", "units", "dtype", "shape", "data", "codec")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    name: str
    units: str
    dtype: DType
    shape: _containers.RepeatedScalarFieldContainer[int]
    data: bytes
    codec: Codec
    def __init__(self, name: _Optional[str] = ..., units: _Optional[str] = ..., dtype: _Optional[_Union[DType, str]] = ..., shape: _Optional[_Iterable[int]] = ..., data: _Optional[bytes] = ..., codec: _Optional[_Union[Codec, _Mapping]] = ...) -> None: ...

class DescribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VariableInfo(_message.Message):
    __slots__ = ("name", "units", "direction", "long_name", "valid_min", "valid_max", "required", "observable", "positive")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    LONG_NAME_FIELD_NUMBER: _ClassVar[int]
    VALID_MIN_FIELD_NUMBER: _ClassVar[int]
    VALID_MAX_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    OBSERVABLE_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_FIELD_NUMBER: _ClassVar[int]
    name: str
    units: str
    direction: str
    long_name: str
    valid_min: float
    valid_max: float
    required: bool
    observable: bool
    positive: str
    def __init__(self, name: _Optional[str] = ..., units: _Optional[str] = ..., direction: _Optional[str] = ..., long_name: _Optional[str] = ..., valid_min: _Optional[float] = ..., valid_max: _Optional[float] = ..., required: _Optional[bool] = ..., observable: _Optional[bool] = ..., positive: _Optional[str] = ...) -> None: ...

class DescribeReply(_message.Message):
    __slots__ = ("server_version", "protocol", "backends", "variables", "codecs", "details_json")
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    CODECS_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    server_version: str
    protocol: str
    backends: _containers.RepeatedScalarFieldContainer[str]
    variables: _containers.RepeatedCompositeFieldContainer[VariableInfo]
    codecs: _containers.RepeatedScalarFieldContainer[str]
    details_json: str
    def __init__(self, server_version: _Optional[str] = ..., protocol: _Optional[str] = ..., backends: _Optional[_Iterable[str]] = ..., variables: _Optional[_Iterable[_Union[VariableInfo, _Mapping]]] = ..., codecs: _Optional[_Iterable[str]] = ..., details_json: _Optional[str] = ...) -> None: ...

class OpenSessionRequest(_message.Message):
    __slots__ = ("lat", "lon", "area", "land_fraction", "grid_shape", "start_rfc3339", "start_time", "timestep", "outputs", "backend", "land_cover_name", "land_cover_fractions", "run_id", "rank", "members", "output_spread", "checkpoint_url", "checkpoint_every", "record_url", "resume_from", "assimilation", "freeze_vegetation_year", "record_options", "parameters_url", "height_wind", "height_temperature")
    LAT_FIELD_NUMBER: _ClassVar[int]
    LON_FIELD_NUMBER: _ClassVar[int]
    AREA_FIELD_NUMBER: _ClassVar[int]
    LAND_FRACTION_FIELD_NUMBER: _ClassVar[int]
    GRID_SHAPE_FIELD_NUMBER: _ClassVar[int]
    START_RFC3339_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    TIMESTEP_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    LAND_COVER_NAME_FIELD_NUMBER: _ClassVar[int]
    LAND_COVER_FRACTIONS_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SPREAD_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_URL_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_EVERY_FIELD_NUMBER: _ClassVar[int]
    RECORD_URL_FIELD_NUMBER: _ClassVar[int]
    RESUME_FROM_FIELD_NUMBER: _ClassVar[int]
    ASSIMILATION_FIELD_NUMBER: _ClassVar[int]
    FREEZE_VEGETATION_YEAR_FIELD_NUMBER: _ClassVar[int]
    RECORD_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_URL_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_WIND_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    lat: Field
    lon: Field
    area: Field
    land_fraction: Field
    grid_shape: _containers.RepeatedScalarFieldContainer[int]
    start_rfc3339: str
    start_time: _timestamp_pb2.Timestamp
    timestep: int
    outputs: _containers.RepeatedScalarFieldContainer[str]
    backend: str
    land_cover_name: str
    land_cover_fractions: Field
    run_id: str
    rank: int
    members: int
    output_spread: bool
    checkpoint_url: str
    checkpoint_every: int
    record_url: str
    resume_from: str
    assimilation: AssimilationOptions
    freeze_vegetation_year: int
    record_options: RecordOptions
    parameters_url: str
    height_wind: float
    height_temperature: float
    def __init__(self, lat: _Optional[_Union[Field, _Mapping]] = ..., lon: _Optional[_Union[Field, _Mapping]] = ..., area: _Optional[_Union[Field, _Mapping]] = ..., land_fraction: _Optional[_Union[Field, _Mapping]] = ..., grid_shape: _Optional[_Iterable[int]] = ..., start_rfc3339: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., timestep: _Optional[int] = ..., outputs: _Optional[_Iterable[str]] = ..., backend: _Optional[str] = ..., land_cover_name: _Optional[str] = ..., land_cover_fractions: _Optional[_Union[Field, _Mapping]] = ..., run_id: _Optional[str] = ..., rank: _Optional[int] = ..., members: _Optional[int] = ..., output_spread: _Optional[bool] = ..., checkpoint_url: _Optional[str] = ..., checkpoint_every: _Optional[int] = ..., record_url: _Optional[str] = ..., resume_from: _Optional[str] = ..., assimilation: _Optional[_Union[AssimilationOptions, _Mapping]] = ..., freeze_vegetation_year: _Optional[int] = ..., record_options: _Optional[_Union[RecordOptions, _Mapping]] = ..., parameters_url: _Optional[str] = ..., height_wind: _Optional[float] = ..., height_temperature: _Optional[float] = ...) -> None: ...

class RecordOptions(_message.Message):
    __slots__ = ("codec", "fields", "chunk_bytes", "shard_chunks", "lossy_forcing")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Codec
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Codec, _Mapping]] = ...) -> None: ...
    CODEC_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHARD_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    LOSSY_FORCING_FIELD_NUMBER: _ClassVar[int]
    codec: Codec
    fields: _containers.MessageMap[str, Codec]
    chunk_bytes: int
    shard_chunks: int
    lossy_forcing: bool
    def __init__(self, codec: _Optional[_Union[Codec, _Mapping]] = ..., fields: _Optional[_Mapping[str, Codec]] = ..., chunk_bytes: _Optional[int] = ..., shard_chunks: _Optional[int] = ..., lossy_forcing: _Optional[bool] = ...) -> None: ...

class AssimilationOptions(_message.Message):
    __slots__ = ("filter", "inflation", "inflation_factor", "inflation_initial", "inflation_sd", "inflation_damping", "inflation_lower", "inflation_upper", "gross_error_k", "center_perturbations", "filter_seed", "perturbation", "parameters", "estimate_parameters", "fields", "half_width_km", "match_km", "keep_days", "keep_steps", "seed", "impact", "leaf_carbon_sd", "initial_leaf_carbon_sd", "observations_url")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    INFLATION_FIELD_NUMBER: _ClassVar[int]
    INFLATION_FACTOR_FIELD_NUMBER: _ClassVar[int]
    INFLATION_INITIAL_FIELD_NUMBER: _ClassVar[int]
    INFLATION_SD_FIELD_NUMBER: _ClassVar[int]
    INFLATION_DAMPING_FIELD_NUMBER: _ClassVar[int]
    INFLATION_LOWER_FIELD_NUMBER: _ClassVar[int]
    INFLATION_UPPER_FIELD_NUMBER: _ClassVar[int]
    GROSS_ERROR_K_FIELD_NUMBER: _ClassVar[int]
    CENTER_PERTURBATIONS_FIELD_NUMBER: _ClassVar[int]
    FILTER_SEED_FIELD_NUMBER: _ClassVar[int]
    PERTURBATION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATE_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    HALF_WIDTH_KM_FIELD_NUMBER: _ClassVar[int]
    MATCH_KM_FIELD_NUMBER: _ClassVar[int]
    KEEP_DAYS_FIELD_NUMBER: _ClassVar[int]
    KEEP_STEPS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    IMPACT_FIELD_NUMBER: _ClassVar[int]
    LEAF_CARBON_SD_FIELD_NUMBER: _ClassVar[int]
    INITIAL_LEAF_CARBON_SD_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_URL_FIELD_NUMBER: _ClassVar[int]
    filter: str
    inflation: str
    inflation_factor: float
    inflation_initial: float
    inflation_sd: float
    inflation_damping: float
    inflation_lower: float
    inflation_upper: float
    gross_error_k: float
    center_perturbations: bool
    filter_seed: int
    perturbation: ForcingPerturbation
    parameters: _containers.RepeatedCompositeFieldContainer[ParameterPrior]
    estimate_parameters: bool
    fields: _containers.RepeatedScalarFieldContainer[str]
    half_width_km: float
    match_km: float
    keep_days: int
    keep_steps: int
    seed: int
    impact: _containers.RepeatedCompositeFieldContainer[ObservationImpact]
    leaf_carbon_sd: float
    initial_leaf_carbon_sd: float
    observations_url: str
    def __init__(self, filter: _Optional[str] = ..., inflation: _Optional[str] = ..., inflation_factor: _Optional[float] = ..., inflation_initial: _Optional[float] = ..., inflation_sd: _Optional[float] = ..., inflation_damping: _Optional[float] = ..., inflation_lower: _Optional[float] = ..., inflation_upper: _Optional[float] = ..., gross_error_k: _Optional[float] = ..., center_perturbations: _Optional[bool] = ..., filter_seed: _Optional[int] = ..., perturbation: _Optional[_Union[ForcingPerturbation, _Mapping]] = ..., parameters: _Optional[_Iterable[_Union[ParameterPrior, _Mapping]]] = ..., estimate_parameters: _Optional[bool] = ..., fields: _Optional[_Iterable[str]] = ..., half_width_km: _Optional[float] = ..., match_km: _Optional[float] = ..., keep_days: _Optional[int] = ..., keep_steps: _Optional[int] = ..., seed: _Optional[int] = ..., impact: _Optional[_Iterable[_Union[ObservationImpact, _Mapping]]] = ..., leaf_carbon_sd: _Optional[float] = ..., initial_leaf_carbon_sd: _Optional[float] = ..., observations_url: _Optional[str] = ...) -> None: ...

class ForcingPerturbation(_message.Message):
    __slots__ = ("pr", "rsds", "tas", "huss", "tau_hours")
    PR_FIELD_NUMBER: _ClassVar[int]
    RSDS_FIELD_NUMBER: _ClassVar[int]
    TAS_FIELD_NUMBER: _ClassVar[int]
    HUSS_FIELD_NUMBER: _ClassVar[int]
    TAU_HOURS_FIELD_NUMBER: _ClassVar[int]
    pr: float
    rsds: float
    tas: float
    huss: float
    tau_hours: float
    def __init__(self, pr: _Optional[float] = ..., rsds: _Optional[float] = ..., tas: _Optional[float] = ..., huss: _Optional[float] = ..., tau_hours: _Optional[float] = ...) -> None: ...

class ParameterPrior(_message.Message):
    __slots__ = ("name", "low", "high", "log")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    name: str
    low: float
    high: float
    log: bool
    def __init__(self, name: _Optional[str] = ..., low: _Optional[float] = ..., high: _Optional[float] = ..., log: _Optional[bool] = ...) -> None: ...

class ObservationImpact(_message.Message):
    __slots__ = ("type", "kinds")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    type: str
    kinds: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, type: _Optional[str] = ..., kinds: _Optional[_Iterable[str]] = ...) -> None: ...

class OpenSessionReply(_message.Message):
    __slots__ = ("session_id", "next_index", "outputs", "cells", "members", "start_rfc3339", "timestep", "backend")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    NEXT_INDEX_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    CELLS_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    START_RFC3339_FIELD_NUMBER: _ClassVar[int]
    TIMESTEP_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    next_index: int
    outputs: _containers.RepeatedScalarFieldContainer[str]
    cells: int
    members: int
    start_rfc3339: str
    timestep: int
    backend: str
    def __init__(self, session_id: _Optional[str] = ..., next_index: _Optional[int] = ..., outputs: _Optional[_Iterable[str]] = ..., cells: _Optional[int] = ..., members: _Optional[int] = ..., start_rfc3339: _Optional[str] = ..., timestep: _Optional[int] = ..., backend: _Optional[str] = ...) -> None: ...

class StepRequest(_message.Message):
    __slots__ = ("session_id", "index", "fields", "trailing_fields", "reply_codec", "shared_memory", "reply_dtype")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    TRAILING_FIELDS_FIELD_NUMBER: _ClassVar[int]
    REPLY_CODEC_FIELD_NUMBER: _ClassVar[int]
    SHARED_MEMORY_FIELD_NUMBER: _ClassVar[int]
    REPLY_DTYPE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    index: int
    fields: _containers.RepeatedCompositeFieldContainer[Field]
    trailing_fields: int
    reply_codec: Codec
    shared_memory: SharedMemory
    reply_dtype: DType
    def __init__(self, session_id: _Optional[str] = ..., index: _Optional[int] = ..., fields: _Optional[_Iterable[_Union[Field, _Mapping]]] = ..., trailing_fields: _Optional[int] = ..., reply_codec: _Optional[_Union[Codec, _Mapping]] = ..., shared_memory: _Optional[_Union[SharedMemory, _Mapping]] = ..., reply_dtype: _Optional[_Union[DType, str]] = ...) -> None: ...

class SharedMemory(_message.Message):
    __slots__ = ("name", "size", "fields", "reply_offset")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    REPLY_OFFSET_FIELD_NUMBER: _ClassVar[int]
    name: str
    size: int
    fields: _containers.RepeatedCompositeFieldContainer[SharedField]
    reply_offset: int
    def __init__(self, name: _Optional[str] = ..., size: _Optional[int] = ..., fields: _Optional[_Iterable[_Union[SharedField, _Mapping]]] = ..., reply_offset: _Optional[int] = ...) -> None: ...

class SharedField(_message.Message):
    __slots__ = ("name", "units", "dtype", "shape", "offset")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    name: str
    units: str
    dtype: DType
    shape: _containers.RepeatedScalarFieldContainer[int]
    offset: int
    def __init__(self, name: _Optional[str] = ..., units: _Optional[str] = ..., dtype: _Optional[_Union[DType, str]] = ..., shape: _Optional[_Iterable[int]] = ..., offset: _Optional[int] = ...) -> None: ...

class StepReply(_message.Message):
    __slots__ = ("session_id", "index", "fields", "trailing_fields", "time_rfc3339", "shared_fields")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    TRAILING_FIELDS_FIELD_NUMBER: _ClassVar[int]
    TIME_RFC3339_FIELD_NUMBER: _ClassVar[int]
    SHARED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    index: int
    fields: _containers.RepeatedCompositeFieldContainer[Field]
    trailing_fields: int
    time_rfc3339: str
    shared_fields: _containers.RepeatedCompositeFieldContainer[SharedField]
    def __init__(self, session_id: _Optional[str] = ..., index: _Optional[int] = ..., fields: _Optional[_Iterable[_Union[Field, _Mapping]]] = ..., trailing_fields: _Optional[int] = ..., time_rfc3339: _Optional[str] = ..., shared_fields: _Optional[_Iterable[_Union[SharedField, _Mapping]]] = ...) -> None: ...

class ExchangeRequest(_message.Message):
    __slots__ = ("step", "field")
    STEP_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    step: StepRequest
    field: Field
    def __init__(self, step: _Optional[_Union[StepRequest, _Mapping]] = ..., field: _Optional[_Union[Field, _Mapping]] = ...) -> None: ...

class ExchangeReply(_message.Message):
    __slots__ = ("step", "field")
    STEP_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    step: StepReply
    field: Field
    def __init__(self, step: _Optional[_Union[StepReply, _Mapping]] = ..., field: _Optional[_Union[Field, _Mapping]] = ...) -> None: ...

class ObservationBatch(_message.Message):
    __slots__ = ("type", "units", "values", "errors", "lat", "lon", "times_rfc3339")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    LAT_FIELD_NUMBER: _ClassVar[int]
    LON_FIELD_NUMBER: _ClassVar[int]
    TIMES_RFC3339_FIELD_NUMBER: _ClassVar[int]
    type: str
    units: str
    values: Field
    errors: Field
    lat: Field
    lon: Field
    times_rfc3339: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, type: _Optional[str] = ..., units: _Optional[str] = ..., values: _Optional[_Union[Field, _Mapping]] = ..., errors: _Optional[_Union[Field, _Mapping]] = ..., lat: _Optional[_Union[Field, _Mapping]] = ..., lon: _Optional[_Union[Field, _Mapping]] = ..., times_rfc3339: _Optional[_Iterable[str]] = ...) -> None: ...

class AssimilateRequest(_message.Message):
    __slots__ = ("session_id", "batches")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    batches: _containers.RepeatedCompositeFieldContainer[ObservationBatch]
    def __init__(self, session_id: _Optional[str] = ..., batches: _Optional[_Iterable[_Union[ObservationBatch, _Mapping]]] = ...) -> None: ...

class AssimilateReply(_message.Message):
    __slots__ = ("accepted", "assimilated")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    ASSIMILATED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    assimilated: bool
    def __init__(self, accepted: _Optional[int] = ..., assimilated: _Optional[bool] = ...) -> None: ...

class UpdateLandCoverRequest(_message.Message):
    __slots__ = ("session_id", "index", "land_cover_fractions")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    LAND_COVER_FRACTIONS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    index: int
    land_cover_fractions: Field
    def __init__(self, session_id: _Optional[str] = ..., index: _Optional[int] = ..., land_cover_fractions: _Optional[_Union[Field, _Mapping]] = ...) -> None: ...

class UpdateLandCoverReply(_message.Message):
    __slots__ = ("cells_changed", "water_residual", "energy_residual", "carbon_residual", "released")
    CELLS_CHANGED_FIELD_NUMBER: _ClassVar[int]
    WATER_RESIDUAL_FIELD_NUMBER: _ClassVar[int]
    ENERGY_RESIDUAL_FIELD_NUMBER: _ClassVar[int]
    CARBON_RESIDUAL_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    cells_changed: int
    water_residual: float
    energy_residual: float
    carbon_residual: float
    released: _containers.RepeatedCompositeFieldContainer[Field]
    def __init__(self, cells_changed: _Optional[int] = ..., water_residual: _Optional[float] = ..., energy_residual: _Optional[float] = ..., carbon_residual: _Optional[float] = ..., released: _Optional[_Iterable[_Union[Field, _Mapping]]] = ...) -> None: ...

class CheckpointRequest(_message.Message):
    __slots__ = ("session_id", "url")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    url: str
    def __init__(self, session_id: _Optional[str] = ..., url: _Optional[str] = ...) -> None: ...

class CheckpointReply(_message.Message):
    __slots__ = ("url", "next_index")
    URL_FIELD_NUMBER: _ClassVar[int]
    NEXT_INDEX_FIELD_NUMBER: _ClassVar[int]
    url: str
    next_index: int
    def __init__(self, url: _Optional[str] = ..., next_index: _Optional[int] = ...) -> None: ...

class CloseSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class CloseSessionReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
