"""lumbar_ccfnet"""
