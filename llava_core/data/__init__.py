"""Record formats, conversation templates, label masks, image transforms, datasets, tiny world."""
