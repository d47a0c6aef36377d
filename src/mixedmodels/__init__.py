"""mixedmodels"""
