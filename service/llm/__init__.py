"""Language-model access: litellm configuration and the embedded local model."""
