from twisted.application.service import ServiceMaker

actornet = ServiceMaker(
    "actornet", "actornet.tap", "A network of actors around a dispatcher", "actornet")
