"""Networks declared by hand (``rflint.Graph``) and their JSON files: no framework at all."""
