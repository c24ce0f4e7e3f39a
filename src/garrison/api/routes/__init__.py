"""The REST API's routes, one module per area; each is an ``APIRouter`` named ``router``."""
