"""spine_xray"""
