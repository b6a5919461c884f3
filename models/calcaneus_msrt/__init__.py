"""calcaneus_msrt"""
