"""Lanternpath: an educational choose-your-own-adventure server whose chapters stream live."""
import os

# litellm fetches a price map from the internet at import unless told otherwise; the
# service must start on a machine with no network, so this runs before any import of it.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("LITELLM_TELEMETRY", "False")
