"""The sandbox's endpoint handlers, one module per resource group; base.py holds what they share."""
