"""Processing provider and algorithms of the Landslide Mapper plugin."""
