"""Importers: read a billing system's exports and write a contract-shaped source folder (`saaskpi import <system>`)."""
